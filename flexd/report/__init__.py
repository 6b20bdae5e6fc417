"""What a person reads: the demo's end-of-run summary and the plan plot."""
