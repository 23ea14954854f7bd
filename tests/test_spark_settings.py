"""The settings a Spark session starts with (no JVM is started here)."""

from openasm.engine_spark import session_settings


def test_local_master_runs_the_driver_jvm_with_the_throughput_collector(monkeypatch):
    monkeypatch.delenv("OPENASM_SPARK_DRIVER_JAVA_OPTIONS", raising=False)
    settings = session_settings("local[2]", "file:///tmp/wh")
    assert settings["spark.driver.extraJavaOptions"] == "-XX:+UseParallelGC"
    assert settings["spark.sql.files.openCostInBytes"] == "131072"  # files of a few hundred KB split over the cores
    assert settings["spark.sql.warehouse.dir"] == "file:///tmp/wh"
    assert "spark.executor.memory" not in settings


def test_driver_java_options_and_sizes_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("OPENASM_SPARK_DRIVER_JAVA_OPTIONS", "-XX:+UseG1GC")
    monkeypatch.setenv("OPENASM_SPARK_SHUFFLE_PARTITIONS", "12")
    settings = session_settings("local[*]", "/tmp/wh")
    assert settings["spark.driver.extraJavaOptions"] == "-XX:+UseG1GC"
    assert settings["spark.sql.shuffle.partitions"] == "12"


def test_cluster_master_leaves_the_driver_jvm_alone_and_sizes_executors(monkeypatch):
    monkeypatch.delenv("OPENASM_SPARK_EXECUTOR_MEMORY", raising=False)
    settings = session_settings("spark://127.0.0.1:7077", "s3a://bucket/run")
    assert "spark.driver.extraJavaOptions" not in settings
    assert "spark.sql.files.openCostInBytes" not in settings
    assert settings["spark.executor.memory"] == "1g"
