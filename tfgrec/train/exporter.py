"""`tfgrec export`: a trained run's artifacts -> a SavedModel in TF Serving's layout.

  path = export_run(load_config("out/run/config.yaml"), base="out/models", model_name="tfgrec")
  # out/models/tfgrec/<version>/saved_model.pb, variables/, assets.extra/

Export only packages: it reads the final fit's artifacts (tfgrec.train.final_fit), checks them
against the run's manifest, assembles the serving module (tfgrec.export) from them and saves it
with its warmup requests (tfgrec.export.export.save_module). It fits nothing and never runs the
graph tower; a run without a final fit is told to run `tfgrec final-fit`.
"""
from typing import Optional

from tfgrec import config as config_lib
from tfgrec.export import export as export_lib
from tfgrec.export import serving_module
from tfgrec.export import two_stage_module
from tfgrec.ranking import features as features_lib
from tfgrec.sources import time_context
from tfgrec.train import final_fit
from tfgrec.train import two_stage


def build_module(config: config_lib.RunConfig, k: int = 20) -> serving_module.ServingModule:
  """The serving module of a trained run, assembled from its final fit's artifacts."""
  _, arrays, info = final_fit.read(config)
  item_text = arrays.get("item_text_embeddings")
  kwargs = dict(
      user_ids=arrays["user_ids"], item_ids=arrays["item_ids"],
      user_embeddings=arrays["user_embeddings"], item_embeddings=arrays["item_embeddings"],
      seen_indptr=arrays["seen_indptr"], seen_indices=arrays["seen_indices"],
      popularity=arrays["popularity"], history_half_life=info["history_half_life"], k=k,
      item_bias=arrays["item_bias"] if info["has_item_bias"] else None,
      item_encoder=final_fit.item_encoder(config), user_encoder=final_fit.user_encoder(config),
      item_text_embeddings=item_text)
  if not info["two_stage"]:
    return serving_module.ServingModule(**kwargs)
  ranker, ranker_info = two_stage.load(config)
  if ranker_info["feature_names"] != info["feature_names"]:
    raise ValueError(f"the ranker of {config.run_dir} reads {ranker_info['feature_names']}, "
                     f"the final fit made {info['feature_names']}: rerun `tfgrec final-fit`")
  num_items = len(arrays["item_ids"])
  events = time_context.EventIndex(arrays["event_items"], arrays["event_times"],
                                   num_items=num_items,
                                   available_time=arrays.get("available_time"))
  features = features_lib.CandidateFeatures(
      sources=final_fit.load_sources(config, info), events=events,
      text_embedding=arrays.get("feature_text"), item_categories=arrays["item_categories"],
      config=features_lib.FeatureConfig(drop=tuple(info["drop_features"])))
  return two_stage_module.TwoStageModule(
      features=features, ranker=ranker, seen_times=arrays["seen_times"],
      clock=info["clock"], new_items=arrays["new_items"],
      user_states=arrays.get("user_states"), new_item_boost=info["new_item_boost"], **kwargs)


def export_run(config: config_lib.RunConfig, base: str, model_name: str = "tfgrec",
               version: Optional[int] = None, k: int = 20) -> str:
  """Packages a trained run (module docstring); returns the version directory."""
  return export_lib.save_module(build_module(config, k), base, model_name, version)
