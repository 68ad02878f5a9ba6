"""minikafka's clients: the admin client and the `minikafka` command line."""
