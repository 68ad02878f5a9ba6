"""The authorizer (Kafka's AclAuthorizer): ACLs as Kafka's ZooKeeper authorizer stores them, and
the decision whether a principal may do an operation on a resource (acl.py, pure)."""
