"""Create the database named in DATABASE_URL if it does not exist (the local run's first step)."""

import os

import environ
import psycopg
from psycopg import sql

url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/realmate")
config = environ.Env.db_url_config(url)
connection = psycopg.connect(
    host=config["HOST"],
    port=config["PORT"] or 5432,
    user=config["USER"],
    password=config["PASSWORD"],
    dbname="postgres",
)
connection.autocommit = True
with connection.cursor() as cursor:
    cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]])
    if cursor.fetchone() is None:
        cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config["NAME"])))
        print(f"created database {config['NAME']}")
connection.close()
