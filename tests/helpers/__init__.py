"""What tests share besides fixtures: clients' requests, settings, checks."""
