"""The interaction graph: its GraphSchema and its assembly as a TF-GNN GraphTensor."""
# Node set and edge set names.
from tfgrec.graph.schema import ATTRIBUTE_OF
from tfgrec.graph.schema import ATTRIBUTE_OF_USER
from tfgrec.graph.schema import CATEGORY
from tfgrec.graph.schema import HAS_ATTRIBUTE
from tfgrec.graph.schema import HAS_ITEM
from tfgrec.graph.schema import IN_CATEGORY
from tfgrec.graph.schema import INTERACTED
from tfgrec.graph.schema import INTERACTED_BY
from tfgrec.graph.schema import ITEM
from tfgrec.graph.schema import ITEM_ATTRIBUTE
from tfgrec.graph.schema import USER
from tfgrec.graph.schema import USER_ATTRIBUTE
from tfgrec.graph.schema import USER_HAS_ATTRIBUTE
# The GraphSchema and the GraphTensorSpec that parses the graph's tf.Examples.
from tfgrec.graph.schema import graph_schema
from tfgrec.graph.schema import graph_spec
from tfgrec.graph.schema import read_schema
from tfgrec.graph.schema import write_schema
# Vocabularies + edges -> GraphTensor -> tf.Example bytes, and back.
from tfgrec.graph.build import add_interactions
from tfgrec.graph.build import GraphTables
from tfgrec.graph.build import make_tables
from tfgrec.graph.build import parse
from tfgrec.graph.build import serialize
from tfgrec.graph.build import to_graph_tensor
# Recency of interaction edges (rank from the user's latest) and its encoding.
from tfgrec.graph.recency import add_recency_features
from tfgrec.graph.recency import recency_ranks
