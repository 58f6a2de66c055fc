//! A nom parser for the XLA HLO text format, with line/column diagnostics.
