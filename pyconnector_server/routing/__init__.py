"""Message Routing: rules that filter observation streams from an input to a topic."""
