"""Stage 1, reading: streaming readers for the files a job leaves behind.

`stream` yields whole-line binary chunks from plain or gzipped files; `logscan` turns a SLURM
`.out`/`.err` log into a `LogScan` (line-numbered events and per-epoch aggregates, data model in
`records`, byte patterns in `patterns`); `run_dir` reads a DINO output directory (`log.txt` JSON
lines, `config_args_all.json`) and `epoch_metrics` the per-epoch AP of its `log.txt`; `job_files`
turns command-line paths into jobs (a log, its `.err`, sibling logs, the output directory).
"""
