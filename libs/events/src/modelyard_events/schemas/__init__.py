"""Event schemas shared across services: each service's events, by the service that emits them.

A service imports another's events only from here (never the other service's
package); each module ends with the registry that service decodes and emits.
"""
