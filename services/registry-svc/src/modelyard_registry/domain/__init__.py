"""Pure registry rules: semantic versions, the lifecycle, metric gates and the ModelModule aggregate."""
