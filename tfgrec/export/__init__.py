"""Export: serving modules -> SavedModels for TensorFlow Serving (dense signatures, brute-force
index). Packaging only: a run's module is assembled from its final fit by tfgrec.train.exporter."""
from tfgrec.export.export import save_module
from tfgrec.export.export import signatures_line
from tfgrec.export.serving_module import ServingModule
from tfgrec.export.item_encoder import NewItemEncoder
from tfgrec.export.item_encoder import NewUserEncoder
# Version folders of TF Serving's layout (tfgrec.saved_models is their one home).
from tfgrec.saved_models import next_version
# The cold-item and new-user encoders as run artifacts (saved by the final fit).
from tfgrec.export.saved_encoders import SavedItemEncoder
from tfgrec.export.saved_encoders import SavedUserEncoder
