"""The RouteBricks cluster: several servers that together behave as one router (§3, §6)."""
