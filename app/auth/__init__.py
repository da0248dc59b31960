"""Who may do what: the operator policy (`policy`) and, per project, the caller's role."""
