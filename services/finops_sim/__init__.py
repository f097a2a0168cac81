"""finops-sim: the local simulation (`finops-sim run`) and its savings report."""
