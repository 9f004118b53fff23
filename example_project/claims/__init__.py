"""The claims app of the example project: insurance claims moved through a workflow."""
