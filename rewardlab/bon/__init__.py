"""Best-of-N selection and overoptimization curves over a proxy reward."""
