"""Streaming readers for the files a job leaves behind.

`stream` yields whole-line binary chunks from plain or gzipped files; `logscan` turns a SLURM
`.out`/`.err` log into a `LogScan` (line-numbered events and per-epoch aggregates); `outputs`
reads a DINO output directory (`log.txt` JSON lines, `config_args_all.json`).
"""
