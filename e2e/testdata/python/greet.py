"""A Pulsar Functions Python function: greets each input with the GREETING
secret, which meshfed's agent resolves into the function's environment."""

from pulsar import Function


class Greeter(Function):
    def process(self, input, context):
        return "%s %s" % (context.get_secret("GREETING"), input)
