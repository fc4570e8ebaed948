"""The engine: durable workflows, leadership, the clock port and kill hooks.

It knows nothing about OpenStack: workflows call step functions that the
services provide.
"""
