namespace Tandem.Engine.Threading;

/// <summary>A piece of parallel work: each of <c>workers</c> threads calls Execute once with its own index.</summary>
public interface IPoolJob
{
    void Execute(int worker, int workers);
}

/// <summary>
/// A fixed set of worker threads for matrix work. The calling thread is worker 0, so <c>threads</c> = 1 runs
/// everything inline. Idle workers spin briefly, then park on an event; dispatch allocates nothing and takes no lock.
/// </summary>
public sealed class WorkerPool : IDisposable
{
    const int SpinIterations = 2000;

    readonly Thread[] _threads;
    readonly ManualResetEventSlim[] _wake;
    IPoolJob? _job;
    int _pending;
    Exception? _workerError;
    volatile bool _stopping;

    public int Threads { get; }

    public WorkerPool(int threads)
    {
        if (threads < 1) throw new ArgumentOutOfRangeException(nameof(threads), threads, "need at least one thread");
        Threads = threads;
        _threads = new Thread[threads - 1];
        _wake = new ManualResetEventSlim[threads - 1];
        for (int i = 0; i < _threads.Length; i++)
        {
            _wake[i] = new ManualResetEventSlim(false, SpinIterations);
            int worker = i + 1;
            _threads[i] = new Thread(() => WorkerLoop(worker)) { IsBackground = true, Name = $"tandem-worker-{worker}" };
            _threads[i].Start();
        }
    }

    /// <summary>Runs the job on every worker and returns when all have finished. Not reentrant.</summary>
    public void Run(IPoolJob job)
    {
        if (_threads.Length == 0)
        {
            job.Execute(0, 1);
            return;
        }
        _job = job;
        Volatile.Write(ref _pending, _threads.Length);
        foreach (var e in _wake) e.Set();
        job.Execute(0, Threads);
        var spin = new SpinWait();
        while (Volatile.Read(ref _pending) != 0) spin.SpinOnce(sleep1Threshold: -1);
        _job = null;
        if (_workerError is { } error)
        {
            _workerError = null;
            throw new AggregateException("A worker thread failed.", error);
        }
    }

    void WorkerLoop(int worker)
    {
        var wake = _wake[worker - 1];
        while (true)
        {
            wake.Wait();
            wake.Reset();
            if (_stopping) return;
            try
            {
                _job!.Execute(worker, Threads);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref _workerError, e, null);
            }
            finally
            {
                Interlocked.Decrement(ref _pending);
            }
        }
    }

    /// <summary>The [start, end) share of <paramref name="count"/> items for one worker.</summary>
    public static (int Start, int End) Split(int count, int worker, int workers)
    {
        long start = (long)count * worker / workers;
        long end = (long)count * (worker + 1) / workers;
        return ((int)start, (int)end);
    }

    /// <summary>As <see cref="Split(int, int, int)"/> in whole units of <paramref name="granularity"/> items (the last share takes the remainder).</summary>
    public static (int Start, int End) Split(int count, int worker, int workers, int granularity)
    {
        if (granularity <= 1) return Split(count, worker, workers);
        int units = (count + granularity - 1) / granularity;
        var (start, end) = Split(units, worker, workers);
        return (Math.Min(count, start * granularity), Math.Min(count, end * granularity));
    }

    public void Dispose()
    {
        _stopping = true;
        foreach (var e in _wake) e.Set();
        foreach (var t in _threads) t.Join();
        foreach (var e in _wake) e.Dispose();
    }
}
