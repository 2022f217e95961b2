"""Keras layers of the graph tower (on TF-GNN GraphTensors)."""
# Degree-normalized convolution across node sets, and the per-edge normalization it reads.
from tfgrec.layers.gcn_conv import add_gcn_normalization
from tfgrec.layers.gcn_conv import GCN_NORM
from tfgrec.layers.gcn_conv import GCNConv
from tfgrec.layers.gcn_conv import gcn_normalization
# Causal self-attention over an event sequence with a per-head time-bucket bias (SASRec/TiSASRec).
from tfgrec.layers.causal_time_attention import CausalTimeAttention
# Multi-head attention of each receiver over its edges (the tower's attention branch).
from tfgrec.layers.graph_attention import GraphAttentionConv
