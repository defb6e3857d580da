"""Harvesters: data in from other portals (CKAN, data.gouv.fr), only through registry.service.publish."""
