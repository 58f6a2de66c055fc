//! A plain reference evaluator for HLO: the oracle for tests and for constant folding.
