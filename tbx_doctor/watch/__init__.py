"""Follow a running job (`follower`) and the clock-based early warnings only a live job gets
(`early_warnings`)."""
