"""Shared by the UI tests: the GraphQL the Dagster UI queries, run over an in-process workspace of the real
code location (`pipelines.definitions:defs`), as dagster-graphql's own tests do."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from dagster._core.test_utils import in_process_test_workspace
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster_graphql.test.utils import execute_dagster_graphql


@contextmanager
def ui(instance: dg.DagsterInstance) -> Iterator:
    """The UI's GraphQL context over the real code location."""
    origin = LoadableTargetOrigin(module_name="market_warehouse.pipelines.definitions", attribute="defs")
    with in_process_test_workspace(instance, origin) as context:
        yield context


def graphql(instance: dg.DagsterInstance, query: str, **variables) -> dict:
    """The data of a query or mutation; fails on any GraphQL error."""
    with ui(instance) as context:
        result = execute_dagster_graphql(context, query, variables=variables)
    assert not result.errors, result.errors
    return result.data


# Each partition's materializations of an asset with their tags and metadata, and the data version Dagster
# keeps per partition: what the asset's Events and Partitions tabs show.
MATERIALIZATIONS_QUERY = """
query Events($assetKey: AssetKeyInput!, $partitions: [String!]) {
  assetOrError(assetKey: $assetKey) {
    ... on Asset {
      assetMaterializations(partitions: $partitions) {
        partition runId
        tags { key value }
        metadataEntries {
          label
          ... on IntMetadataEntry { intValue }
          ... on TextMetadataEntry { text }
          ... on JsonMetadataEntry { jsonString }
          ... on MarkdownMetadataEntry { mdStr }
        }
      }
    }
  }
  assetNodeOrError(assetKey: $assetKey) {
    ... on AssetNode { dataVersionByPartition(partitions: $partitions) }
  }
}
"""
