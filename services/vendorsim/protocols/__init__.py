"""The vendor wire protocols the simulator speaks: one module per protocol, each parsing its
request body into a ``Conversation`` and rendering a ``Reply`` or an error in its own shapes."""
