"""Tests of vpd_lite.erase."""
