"""Models: the graph tower and the full recommender under tfrs tasks."""
# The graph tower (initial states, convolution + attention rounds, layer combination).
from tfgrec.models.graph_tower import GraphTower
from tfgrec.models.graph_tower import GraphTowerConfig
from tfgrec.models.graph_tower import prepare_graph
# The full model: retrieval, ranking and graph <-> text alignment losses.
from tfgrec.models.recommender import GraphRecommender
from tfgrec.models.recommender import TaskConfig
from tfgrec.models.recommender import user_text_profile
