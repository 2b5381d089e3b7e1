"""The built-in demo task: templated prompts, a toy policy, a known gold reward, noisy annotators."""
