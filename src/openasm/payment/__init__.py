"""Payment stage: exchange function, incentive pool, scaling factor and payment adjustment (§512.750)."""
