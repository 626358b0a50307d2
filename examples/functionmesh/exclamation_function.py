"""Pulsar's exclamation example, as a Pulsar Functions Python function:
meshfed runs it unchanged (docs/migration.md, "Python functions")."""

from pulsar import Function


class ExclamationFunction(Function):
    def __init__(self):
        pass

    def process(self, input, context):
        return input + "!"
