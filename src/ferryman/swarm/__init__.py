"""Docker Swarm environments: a manager to ask, nodes to load images on, services to update."""
