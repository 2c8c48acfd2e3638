"""This deployment's topics: the worker's settings and sources file as the topic catalog's plain values.

`topics/` knows nothing of settings; this is where they meet. The worker, the `topics` commands
and deploy/gen.py all go through `catalog`, so no two of them can disagree on a name or a size.
"""

from __future__ import annotations

from topics.catalog import Catalog, Outputs, Sizing, build_catalog
from topics.provision import Broker, TopicState, create, inspect
from worker.config.settings import Settings
from worker.config.sources import SourcesConfig


def catalog(settings: Settings, sources: SourcesConfig | None) -> Catalog:
    """Every topic for these settings and (unprefixed) sources file; only the input without one.

    Raises `topics.catalog.CatalogError` when one topic is named for two jobs.
    """
    outputs = None
    if sources is not None:
        config = sources.with_prefix(settings.topic_prefix)
        outputs = Outputs(
            destinations={name: destination.topic for name, destination in config.destinations.items()},
            dead_letter=config.dead_letter_topic,
            skip=config.skip_topic,
        )
    sizing = Sizing(
        input_partitions=settings.input_partitions,
        output_partitions=settings.output_partitions,
        replication_factor=settings.replication_factor,
    )
    return build_catalog(settings.raw_topic, outputs, sizing)


def broker(settings: Settings) -> Broker:
    return Broker(settings.bootstrap_servers, settings.kafka_auth())


async def create_topics(settings: Settings, topics: Catalog) -> list[TopicState]:
    """Create the missing topics of `topics` on the settings' brokers (`topics.provision.create`)."""
    return await create(broker(settings), topics)


async def inspect_topics(settings: Settings, topics: Catalog) -> list[TopicState]:
    """`topics` compared with the settings' brokers (`topics.provision.inspect`)."""
    return await inspect(broker(settings), topics)
