"""The production profile: PostgreSQL storage (``core.psql_dos``) and the RabbitMQ broker (``core.rabbitmq``).

Both servers must exist already (a site's, or the loopback ones ``tests/cluster/setup_cluster.sh`` starts); the
database and its role too. :func:`check_services` connects to each before any profile is written, so a wrong
password or a stopped server is reported as such and leaves no half-made profile behind.
"""

from __future__ import annotations

import pathlib
import socket
from dataclasses import dataclass


class ServiceError(RuntimeError):
    """A database or broker that cannot be reached with the given settings."""


@dataclass(frozen=True)
class ProductionSettings:
    """Where the PostgreSQL database and the RabbitMQ broker are, and how to log in (loopback defaults)."""

    db_host: str = '127.0.0.1'
    db_port: int = 5432
    db_user: str = 'sianode'
    db_password: str = ''
    db_name: str = 'sianode'
    broker_host: str = '127.0.0.1'
    broker_port: int = 5672
    broker_user: str = 'guest'
    broker_password: str = 'guest'
    broker_vhost: str = ''

    def storage_config(self, repository: pathlib.Path) -> dict:
        """The ``core.psql_dos`` configuration, with the file repository at ``repository``."""
        return {
            'database_engine': 'postgresql_psycopg',
            'database_hostname': self.db_host,
            'database_port': self.db_port,
            'database_username': self.db_user,
            'database_password': self.db_password,
            'database_name': self.db_name,
            'repository_uri': repository.resolve().as_uri(),
        }

    def broker_config(self) -> dict:
        """The ``core.rabbitmq`` configuration."""
        return {
            'broker_protocol': 'amqp',
            'broker_username': self.broker_user,
            'broker_password': self.broker_password,
            'broker_host': self.broker_host,
            'broker_port': self.broker_port,
            'broker_virtual_host': self.broker_vhost,
        }


def check_database(settings: ProductionSettings, timeout: float = 10.0) -> str:
    """Connect to the database; return the server's version or raise :class:`ServiceError` saying why not."""
    import psycopg

    try:
        with psycopg.connect(
            host=settings.db_host,
            port=settings.db_port,
            user=settings.db_user,
            password=settings.db_password,
            dbname=settings.db_name,
            connect_timeout=int(max(1, timeout)),
        ) as connection:
            return connection.execute('SHOW server_version').fetchone()[0]
    except psycopg.Error as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise ServiceError(
            f'PostgreSQL database `{settings.db_name}` at {settings.db_host}:{settings.db_port} as '
            f'`{settings.db_user}` cannot be opened: {reason}'
        ) from None


def check_broker(settings: ProductionSettings, timeout: float = 10.0) -> None:
    """Open an AMQP connection to RabbitMQ (login included), or raise :class:`ServiceError`."""
    try:
        socket.create_connection((settings.broker_host, settings.broker_port), timeout=timeout).close()
    except OSError as error:
        raise ServiceError(
            f'RabbitMQ at {settings.broker_host}:{settings.broker_port} cannot be reached: {error}'
        ) from None
    from kiwipy.rmq import RmqThreadCommunicator

    url = (
        f'amqp://{settings.broker_user}:{settings.broker_password}@{settings.broker_host}:{settings.broker_port}/'
        f'{settings.broker_vhost}'
    )
    try:
        communicator = RmqThreadCommunicator.connect(connection_params={'url': url}, testing_mode=True)
    except Exception as error:  # aiormq raises several kinds (ProbableAuthenticationError, AMQPConnectionError...)
        raise ServiceError(
            f'RabbitMQ at {settings.broker_host}:{settings.broker_port} refuses `{settings.broker_user}`: '
            f'{type(error).__name__}: {error}'
        ) from None
    communicator.close()


def check_services(settings: ProductionSettings) -> dict:
    """Check the database and the broker; return ``{'postgresql': version, 'rabbitmq': 'ok'}``."""
    version = check_database(settings)
    check_broker(settings)
    return {'postgresql': version, 'rabbitmq': 'ok'}
