//! HLO graph passes: inlining, normalisation, DCE, CSE, folding, fusion planning.
