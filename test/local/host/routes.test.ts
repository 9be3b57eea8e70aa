import { describe, expect, it } from 'vitest';
import { compileRoute, findRoute, matchRoute, routeTable } from '../../../src/local/host/routes.js';

describe('compileRoute / matchRoute', () => {
  it('literal segments match case-insensitively, with or without a trailing slash', () => {
    const r = compileRoute('f', 'workspaces/status');
    expect(matchRoute(r, '/Workspaces/STATUS')).toEqual({});
    expect(matchRoute(r, '/workspaces/status/')).toEqual({});
    expect(matchRoute(r, '/workspaces')).toBeUndefined();
  });

  it('parameters, optional parameters and catch-all', () => {
    const r = compileRoute('f', 'items/{id}/{rest?}');
    expect(matchRoute(r, '/items/42')).toEqual({ id: '42' });
    expect(matchRoute(r, '/items/42/more')).toEqual({ id: '42', rest: 'more' });
    expect(matchRoute(r, '/items/a%20b')).toEqual({ id: 'a b' });
    expect(matchRoute(compileRoute('f', 'files/{*path}'), '/files/a/b/c.parquet')).toEqual({ path: 'a/b/c.parquet' });
  });

  it('constraints reject values of the wrong kind', () => {
    const r = compileRoute('f', 'jobs/{n:int}');
    expect(matchRoute(r, '/jobs/7')).toEqual({ n: '7' });
    expect(matchRoute(r, '/jobs/seven')).toBeUndefined();
  });

  it('a bad percent-encoding does not match', () => {
    expect(matchRoute(compileRoute('f', 'x/{id}'), '/x/%E0%A4%A')).toBeUndefined();
  });

  it('rejects segments that mix literals and parameters', () => {
    expect(() => compileRoute('f', 'a/b{id}')).toThrow('route "a/b{id}" of f: unsupported segment "b{id}"');
  });

  it('upper-cases methods; none means any', () => {
    expect(compileRoute('f', 'x', ['get', 'Post']).methods).toEqual(new Set(['GET', 'POST']));
    expect(compileRoute('f', 'x', []).methods).toBeUndefined();
  });
});

describe('findRoute', () => {
  const table = routeTable([
    { fn: 'byId', template: 'items/{id}', methods: ['GET'] },
    { fn: 'latest', template: 'items/latest', methods: ['GET'] },
    { fn: 'create', template: 'items', methods: ['POST'] },
  ]);

  it('literal segments win over parameters', () => {
    expect(findRoute(table, '/items/latest', 'GET')).toMatchObject({ route: { fn: 'latest' }, params: {} });
    expect(findRoute(table, '/items/9', 'GET')).toMatchObject({ route: { fn: 'byId' }, params: { id: '9' } });
  });

  it('a path that matches only with another method lists the allowed methods', () => {
    expect(findRoute(table, '/items', 'GET')).toEqual({ route: undefined, allowed: new Set(['POST']) });
    expect(findRoute(table, '/nothing', 'GET')).toEqual({ route: undefined, allowed: new Set() });
  });
});
