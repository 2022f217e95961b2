"""Apache Beam jobs of tfgrec. Each module is a thin driver over transforms in tfgrec.beam."""
