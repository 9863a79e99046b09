"""kollega's tests: real HTTP servers on loopback stand in for every outside system."""
