"""Storage and data in: engines, tables, repositories, price sources and the quality gate."""
