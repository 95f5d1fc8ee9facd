"""The chain of jobs: one row per job (`rows`), the resume chain across them (`chain`), and its
renderings (`render`: text, JSON, markdown, CSV; `plot`: PNG; `loss_bins`: the loss along
iterations)."""
