"""Benchmark tools: a fast mock upstream (`mock_upstream`) and a load tester (`load_test`)."""
