"""The Cin7 side: the Source interface and its Cin7 Core implementation."""
