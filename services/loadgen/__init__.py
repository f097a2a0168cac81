"""finops-sim load generator: a scenario model and a Locust locustfile that replays it."""
