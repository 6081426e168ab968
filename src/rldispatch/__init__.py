"""rldispatch: learn, evaluate and serve ride dispatch policies with reinforcement learning."""

from rldispatch.env import ENV_ID, DispatchEnv, EnvConfig, register_env

__version__ = "0.1.0"
__all__ = ["ENV_ID", "DispatchEnv", "EnvConfig", "__version__"]

register_env()
