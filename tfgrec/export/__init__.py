"""Export: trained runs -> SavedModels for TensorFlow Serving (dense signatures, brute-force index)."""
from tfgrec.export.export import build_module
from tfgrec.export.export import export_run
from tfgrec.export.export import save_module
from tfgrec.export.serving_module import ServingModule
from tfgrec.export.item_encoder import NewItemEncoder
from tfgrec.export.item_encoder import NewUserEncoder
# Version folders of TF Serving's layout (tfgrec.saved_models is their one home).
from tfgrec.saved_models import next_version
