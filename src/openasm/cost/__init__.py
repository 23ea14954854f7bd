"""Cost category stages: benchmarks (knot tables) and achievement points of the cost measures (ebcm.md §8-§9)."""
