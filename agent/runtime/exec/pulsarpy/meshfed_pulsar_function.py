"""Runs a Pulsar Functions Python function under meshfed's exec runtime.

Usage (the command meshfed writes for a Function Mesh `python` runtime)::

    python3 meshfed_pulsar_function.py CODE CLASSNAME

CODE is the function's code in the working directory: a .py file, a .zip
archive or a .whl wheel (archives are put on sys.path as they are, so they
must hold pure-Python code). CLASSNAME is Pulsar's className, MODULE.NAME
(or NAME alone for a .py file, whose module is the file's stem). NAME is
either a class, instantiated once with no arguments, whose `process(input,
context)` (or `process(input)`) is called per message, or a plain function
`process(input)` / `process(input, context)`.

Pulsar's semantics, as far as meshfed's exec protocol carries them:

- input is the message payload decoded as UTF-8 (a str), or bytes when it
  is not valid UTF-8 (Pulsar's default Python serde).
- the return value is the output: None sends nothing, str is encoded as
  UTF-8, bytes go as they are, anything else is sent as str(value).
- context offers get_message_key, get_message_properties,
  get_current_message_topic_name, get_message_eventtime, get_function_name,
  get_function_tenant, get_function_namespace, get_instance_id,
  get_user_config_value, get_user_config_map, get_secret (the secrets the
  agent resolved into the environment), get_logger, incr_counter,
  get_counter, put_state, get_state, del_counter and publish(topic, payload).
  Other Context calls raise NotImplementedError naming the call.
- with MESHFED_FORWARD_SOURCE_PROPERTIES=true (forwardSourceMessageProperty)
  the input message's properties are copied onto the output.

When the real `pulsar` package is not installed, a minimal `pulsar` module
with a `Function` base class is provided, so `from pulsar import Function`
works. meshfed_function.py (meshfed's Python SDK) must be importable; the
bundle meshfed builds puts it next to this file.
"""

import importlib
import inspect
import os
import sys
import types

import meshfed_function as mf


def _ensure_pulsar_module():
    try:
        import pulsar  # noqa: F401
        if hasattr(pulsar, "Function"):
            return
    except ImportError:
        pass
    mod = types.ModuleType("pulsar")

    class Function(object):
        """Stand-in for pulsar.Function: subclasses define process."""

        def process(self, input, context):
            raise NotImplementedError("process is not implemented")

    mod.Function = Function
    mod.__meshfed_stub__ = True
    sys.modules["pulsar"] = mod


def _load(code, class_name):
    here = os.getcwd()
    path = os.path.join(here, code)
    if code.endswith(".py"):
        sys.path.insert(0, os.path.dirname(path))
        default_module = os.path.splitext(os.path.basename(code))[0]
    elif code.endswith(".zip") or code.endswith(".whl"):
        sys.path.insert(0, path)
        default_module = None
    else:
        raise SystemExit(f"CRITICAL: {code}: a Python function is a .py file, a .zip or a .whl")
    module_name, _, attr = class_name.rpartition(".")
    if not module_name:
        if default_module is None:
            raise SystemExit(f"CRITICAL: className {class_name!r} must be MODULE.NAME for an archive")
        module_name = default_module
    module = importlib.import_module(module_name)
    try:
        target = getattr(module, attr)
    except AttributeError:
        raise SystemExit(f"CRITICAL: module {module_name!r} has no {attr!r} (className {class_name!r})") from None
    if inspect.isclass(target):
        target = target().process
    if not callable(target):
        raise SystemExit(f"CRITICAL: {class_name!r} is neither a class nor a function")
    try:
        params = [
            p for p in inspect.signature(target).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        takes_context = len(params) >= 2
    except (TypeError, ValueError):
        takes_context = True
    return target, takes_context


class Context(object):
    """Pulsar's Python function Context, backed by a meshfed exec context."""

    def __init__(self, ctx):
        self._ctx = ctx
        self._msg = None
        self._extra = []

    def _start(self, msg):
        self._msg = msg
        self._extra = []

    def get_message_id(self):
        return self._msg.id

    def get_message_key(self):
        return self._msg.key or None

    def get_message_properties(self):
        return dict(self._msg.properties)

    def get_current_message_topic_name(self):
        return self._msg.topic

    def get_message_eventtime(self):
        return self._msg.event_time

    def get_function_name(self):
        return self._ctx.function

    def get_function_tenant(self):
        return self._ctx.tenant

    def get_function_namespace(self):
        return self._ctx.namespace

    def get_instance_id(self):
        return self._ctx.instance_index

    def get_user_config_value(self, key):
        return self._ctx.config.get(key)

    def get_user_config_map(self):
        return dict(self._ctx.config)

    def get_secret(self, secret_name):
        # meshfed's agent resolves the function's secrets into its
        # environment; None when there is no such secret, as in Pulsar.
        return os.environ.get(secret_name)

    def get_logger(self):
        return self._ctx.log

    def incr_counter(self, key, amount):
        self._ctx.incr_counter(key, amount)

    def get_counter(self, key):
        return self._ctx.get_counter(key)

    def del_counter(self, key):
        # meshfed counters and values are separate key spaces; a counter is
        # reset by incrementing it back to zero.
        self._ctx.incr_counter(key, -self._ctx.get_counter(key))

    def put_state(self, key, value):
        if isinstance(value, str):
            value = value.encode("utf-8")
        self._ctx.put_state(key, value)

    def get_state(self, key):
        return self._ctx.get_state(key)

    def publish(self, topic_name, message, serde_class_name=None, properties=None, compression_type=None, callback=None, message_conf=None):
        if serde_class_name or compression_type or callback or message_conf:
            raise NotImplementedError("publish: only topic, message and properties are supported")
        self._extra.append(mf.Output(payload=_encode(message), topic=topic_name, properties=properties or None))

    def __getattr__(self, name):
        if name.startswith("get_") or name in ("ack", "record_metric", "seek", "pause", "resume"):
            def unsupported(*args, **kwargs):
                raise NotImplementedError(f"context.{name} is not supported by meshfed's Pulsar Functions runtime")
            return unsupported
        raise AttributeError(name)


def _decode(payload):
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload


def _encode(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    return str(value).encode("utf-8")


def main(argv):
    if len(argv) != 3:
        raise SystemExit("CRITICAL: usage: meshfed_pulsar_function.py CODE CLASSNAME")
    _ensure_pulsar_module()
    target, takes_context = _load(argv[1], argv[2])
    forward = os.environ.get("MESHFED_FORWARD_SOURCE_PROPERTIES", "") == "true"
    state = {}

    def init(ctx):
        state["context"] = Context(ctx)

    def process(ctx, msg):
        pctx = state["context"]
        pctx._start(msg)
        data = _decode(msg.payload)
        result = target(data, pctx) if takes_context else target(data)
        outs = list(pctx._extra)
        if result is not None:
            props = dict(msg.properties) if forward else None
            outs.append(mf.Output(payload=_encode(result), key=msg.key, properties=props))
        return outs

    mf.run(process, init=init)


if __name__ == "__main__":
    main(sys.argv)
