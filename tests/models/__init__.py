"""Tests of vpd_lite.models."""
