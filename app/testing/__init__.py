"""What tests, scripts and benchmarks share to drive the service from outside: nothing in the
service imports it (tests/test_layers.py holds it to that), so it may use the test tools
(httpx) the service itself does not need."""
