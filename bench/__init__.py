"""Benchmarks (not tests): run with `make bench`, which starts real Kafka and PostgreSQL."""
