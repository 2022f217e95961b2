"""The run directory's layout: one object owns every path a run reads or writes.

  layout = RunLayout(config.run_dir)
  layout.best           # <run_dir>/best.json
  layout.final_source("ease")   # <run_dir>/final/sources/ease

  <run_dir>/
    config.yaml                  the resolved config of the run
    checkpoints/best-<epoch>/    the weights of the best validation epoch (named in best.json)
    backup/                      while a run is unfinished: the state it resumes from
    logs/                        TensorBoard
    history.json, best.json      per-epoch figures and the best epoch
    query.json                   the user query picked on validation (tfgrec.train.query)
    embeddings.npz               user / item embeddings of the best epoch on the training graph
    ranker/                      the stage-2 ranker: checkpoint, ranker.json, training_lists.npz,
                                 sources/ (trained sources fit on the training split)
    final/                       the final fit: everything the served model holds, fit on every
                                 known event (tfgrec.train.final_fit)
    manifest.json                what each artifact of the final fit is, with its checksum, the
                                 events and the config it was made from (tfgrec.train.manifest)
    evaluation/                  what `tfgrec evaluate` keeps between calls (never an artifact)
    baselines/<name>/            the trained baselines of `tfgrec evaluate`, runs of their own
    metrics.json, report.md      `tfgrec evaluate`'s figures and report

Paths may be local or on any filesystem tfgrec.storage reads (gs://, s3://, ...).
"""
import dataclasses

from tfgrec import storage


@dataclasses.dataclass(frozen=True)
class RunLayout:
  """Every path of a run directory (module docstring)."""
  run_dir: str

  def _path(self, *parts: str) -> str:
    return storage.join(self.run_dir, *parts)

  # === Training ===
  @property
  def config(self) -> str:
    return self._path("config.yaml")

  @property
  def checkpoints(self) -> str:
    return self._path("checkpoints")

  def best_weights(self, epoch: int) -> str:
    """The weights prefix of the best checkpoint at `epoch` (1-based)."""
    return self._path("checkpoints", f"best-{epoch:04d}", "weights")

  @property
  def backup(self) -> str:
    return self._path("backup")

  @property
  def logs(self) -> str:
    return self._path("logs")

  @property
  def history(self) -> str:
    return self._path("history.json")

  @property
  def best(self) -> str:
    return self._path("best.json")

  @property
  def query(self) -> str:
    return self._path("query.json")

  @property
  def embeddings(self) -> str:
    return self._path("embeddings.npz")

  # === The ranker (fit with the run) ===
  @property
  def ranker(self) -> str:
    return self._path("ranker")

  @property
  def ranker_checkpoint(self) -> str:
    return self._path("ranker", "checkpoint")

  @property
  def ranker_info(self) -> str:
    return self._path("ranker", "ranker.json")

  @property
  def ranker_lists(self) -> str:
    return self._path("ranker", "training_lists.npz")

  def trained_source(self, name: str) -> str:
    """A trained source fit on the training split (evaluation reuses it)."""
    return self._path("ranker", "sources", name)

  # === The final fit (what export packages) ===
  @property
  def final(self) -> str:
    return self._path("final")

  def final_file(self, name: str) -> str:
    return self._path("final", name)

  def final_source(self, name: str) -> str:
    return self._path("final", "sources", name)

  @property
  def manifest(self) -> str:
    return self._path("manifest.json")

  # === Evaluation ===
  @property
  def evaluation_cache(self) -> str:
    return self._path("evaluation", "two_stage.json")

  def baseline(self, name: str) -> str:
    return self._path("baselines", name)

  @property
  def metrics(self) -> str:
    return self._path("metrics.json")

  @property
  def report(self) -> str:
    return self._path("report.md")
