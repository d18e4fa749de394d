"""Reports and benchmarks of icsmdp-theory."""
