"""Stage 2, facts: what was read, turned into typed facts about one job (`job.JobFacts`).

`build.build_facts` makes them from a job's scanned logs and output directory; `arguments` reads
the run's arguments as the log printed them; `source_run` proves where a resumed job's checkpoint
came from. Facts are the only input the rules see.
"""
